package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/sieved/sieved/storage"
)

// Storage configures the per-user script store shared by sieved and
// sieve-lda: <root>/<domain>/<user>/ (see package storage).
type Storage struct {
	Root string `toml:"root"` // default /var/lib/sieve
	// FileMode and DirMode are the permissions of script files and of the
	// domain and user directories (TOML octal: 0o640), applied regardless
	// of the umask.
	FileMode uint32 `toml:"file_mode"`
	DirMode  uint32 `toml:"dir_mode"`
	// Group (name or gid) owning what the store creates, e.g. the MTA's
	// group (Debian-exim, vmail); "" keeps the process's group.
	Group string `toml:"group"`
	// Quotas per user; 0 means unlimited.
	MaxScriptSize int64 `toml:"max_script_size"`
	MaxScripts    int   `toml:"max_scripts"`
	MaxTotalBytes int64 `toml:"max_total_bytes"`
	// EximCompat writes "# Sieve filter" as the first line on disk (hidden
	// from GETSCRIPT) so that Exim's own Sieve interpreter accepts the files.
	EximCompat bool `toml:"exim_compat"`
}

func defaultStorage() Storage {
	return Storage{
		Root:          "/var/lib/sieve",
		FileMode:      0o640,
		DirMode:       0o750,
		MaxScriptSize: 1 << 20, // Pigeonhole's default (1 MiB)
	}
}

func (s Storage) validate() error {
	if s.Root == "" {
		return errors.New("storage.root is empty")
	}
	if s.FileMode&^0o777 != 0 || s.FileMode&0o600 != 0o600 {
		return fmt.Errorf("storage.file_mode %#o: want permission bits including owner rw (0o600)", s.FileMode)
	}
	if s.DirMode&^0o2777 != 0 || s.DirMode&0o700 != 0o700 {
		return fmt.Errorf("storage.dir_mode %#o: want permission bits including owner rwx (0o700)", s.DirMode)
	}
	if s.MaxScriptSize < 0 || s.MaxScripts < 0 || s.MaxTotalBytes < 0 {
		return errors.New("storage: quotas must not be negative (0 = unlimited)")
	}
	return nil
}

// StoreConfig turns the section into storage.Config.
func (s Storage) StoreConfig() storage.Config {
	dirMode := os.FileMode(s.DirMode & 0o777)
	if s.DirMode&0o2000 != 0 {
		dirMode |= os.ModeSetgid
	}
	return storage.Config{
		Root:          s.Root,
		FileMode:      os.FileMode(s.FileMode),
		DirMode:       dirMode,
		Group:         s.Group,
		MaxScriptSize: s.MaxScriptSize,
		MaxScripts:    s.MaxScripts,
		MaxTotalBytes: s.MaxTotalBytes,
		EximCompat:    s.EximCompat,
	}
}
