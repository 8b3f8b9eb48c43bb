//go:build race

package bufpool

const race = true
