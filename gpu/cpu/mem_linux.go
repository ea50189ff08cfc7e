package cpu

import "syscall"

// physicalMemory is the machine's RAM in bytes, 0 if unknown.
func physicalMemory() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// availableMemory is the free RAM in bytes (free + buffers), 0 if unknown.
func availableMemory() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return (int64(si.Freeram) + int64(si.Bufferram)) * int64(si.Unit)
}
