//go:build !linux

package cpu

func physicalMemory() int64  { return 0 }
func availableMemory() int64 { return 0 }
