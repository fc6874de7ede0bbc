// Package chaos is the BFF's chaos suite. It builds the bff binary from the
// parent module and runs it as a separate process over loopback, with real
// HTTP upstreams that misbehave on purpose and a Toxiproxy proxy between the
// BFF and each upstream. It never imports the product: all it knows comes
// from the BFF's public and admin listeners, its logs and /proc.
//
// It is a module of its own so that Toxiproxy and its dependencies never
// reach the product's go.mod. README.md lists the faults, what each test
// asserts and how to run the suite at full size.
package chaos
