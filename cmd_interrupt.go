package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// stopOnInterrupt returns a channel closed at the first SIGINT or SIGTERM,
// on which a training run finishes its step, saves a checkpoint and stops;
// a second signal kills the process as usual. Call release when done.
func stopOnInterrupt() (stop <-chan struct{}, release func()) {
	c := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sig; ok {
			fmt.Fprintln(os.Stderr, "\nblip: interrupt: finishing the step and saving a checkpoint (again to abort)")
			close(c)
			signal.Stop(sig)
		}
	}()
	return c, func() { signal.Stop(sig) }
}
