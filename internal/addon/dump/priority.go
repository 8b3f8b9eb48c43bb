package dump

import (
	"fmt"
	"os"
	"strconv"
)

// defaultNice is how much the data mover lowers its priority (a nice
// increment) once the dump tool or the database client runs. The tool and the server are the backup's
// critical path: the tool holds the server's transaction open and writes
// the dump serially, while the data mover has a read-ahead of tens of MiB
// to catch up from. On a 2-CPU machine, where mysqldump, mariadbd and
// stash want more CPU than there is, a data mover at nice 10 made a
// backup of a 491 MiB MariaDB dump 0.2-0.3 s faster in every one of ten
// interleaved rounds, and nice 19 less consistently so
// (docs/benchmarks.md). The niceness is per thread in Linux, and the
// process's other threads, not the tool, take it.
const defaultNice = 10

// niceEnv sets the increment; 0 keeps the priority stash started with.
const niceEnv = "STASH_DUMP_NICE"

// moverNice reads how much the data mover lowers its priority while a tool
// runs, from niceEnv or defaultNice.
func moverNice() (int, error) {
	v, ok := os.LookupEnv(niceEnv)
	if !ok || v == "" {
		return defaultNice, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 19 {
		return 0, fmt.Errorf("%s=%q: want a whole number from 0 (keep stash's priority) to 19", niceEnv, v)
	}
	return n, nil
}
