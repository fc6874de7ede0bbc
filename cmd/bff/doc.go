// Command bff runs the Backend-for-Frontend proxy: the web and mobile route
// sets over the configured upstreams. With no configuration at all it starts
// built-in demo upstreams on loopback and serves the whole demo.
//
//	bff [-addr 127.0.0.1:8080] [-config bff.yaml]
package main
