package affinity

import (
	"bytes"
	"strconv"
)

// parseStat takes the state (field 3) and the processor (field 39) from
// a /proc/PID/stat line. The command name (field 2) is in parentheses and
// may hold spaces and parentheses itself, so fields count from its last
// ')'.
func parseStat(b []byte) (state byte, cpu int, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field 39 is f[36].
	if len(f) < 37 || len(f[0]) != 1 {
		return 0, 0, false
	}
	cpu, err := strconv.Atoi(string(f[36]))
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], cpu, true
}
