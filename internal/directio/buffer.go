package directio

import "unsafe"

// Align is the alignment O_DIRECT needs for buffer addresses, file offsets
// and lengths: 4096 covers every logical block size Linux block devices
// report (512 or 4096).
const Align = 4096

// alignedBuffer returns n bytes (a multiple of Align) starting at an
// Align-aligned address. Go never moves heap objects, so the alignment holds.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+Align)
	skip := (Align - int(uintptr(unsafe.Pointer(&b[0]))%Align)) % Align
	return b[skip : skip+n : skip+n]
}

// roundUp is n rounded up to a multiple of Align.
func roundUp(n int) int { return (n + Align - 1) &^ (Align - 1) }
