//go:build !race

package test

// raceEnabled: the race detector allows at most 8128 live goroutines, so
// scale tests shrink their client counts under -race.
const raceEnabled = false
