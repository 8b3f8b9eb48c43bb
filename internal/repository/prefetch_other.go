//go:build !linux

package repository

const canAdvise = false

func adviseWillNeed(string, int64, int64) {}
