package storage

import (
	"os"
	"syscall"
)

func umask(m int) int { return syscall.Umask(m) }

func fileGID(st os.FileInfo) int { return int(st.Sys().(*syscall.Stat_t).Gid) }

func flockEx(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }
