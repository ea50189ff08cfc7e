// Package graph records tensor operations into a graph that is executed on a
// gpu.Backend as one command stream, with autodiff: each op's gradient rule
// sits next to its forward.
package graph
