package galera

import (
	"os"
	"syscall"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/appbinding"
)

func addonConfig(conn *appbinding.Connection, scratch string, flags map[string]string) addon.Config {
	return addon.Config{Conn: conn, ScratchDir: scratch, Flags: flags}
}

func statOwner(fi os.FileInfo) (int, int) {
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
