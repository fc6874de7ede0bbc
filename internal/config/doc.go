// Package config reads the operator's YAML file and the environment into
// the settings cmd/bff wires together. Unknown keys are errors: a typo must
// not silently fall back to a default.
package config
