// Package mobile is the mobile app's route set, mounted at /mobile: lean
// views with fewer fields and shorter lists, for small payloads on cellular.
// Like bff/web it holds only data, in the embedded views.yaml; the engine
// and front do the rest.
package mobile
