package maildir

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// KeywordsFile is Dovecot's per-folder keyword table: lines "<index>
// <keyword>", index 0-25 standing for the Maildir info letters a-z.
const KeywordsFile = "dovecot-keywords"

// maxKeywords is the number of lower-case letters Maildir info can carry.
const maxKeywords = 26

// keywordLetters returns the info letters for kws in the folder at dir,
// adding missing keywords to its dovecot-keywords file. Keywords that do
// not fit (all 26 letters taken) are returned in full.
func keywordLetters(ctx context.Context, dir string, perm filePerm, kws []string) (letters string, full []string, err error) {
	if len(kws) == 0 {
		return "", nil, nil
	}
	var out []byte
	err = updateLocked(ctx, filepath.Join(dir, KeywordsFile), perm, func(old []byte) ([]byte, bool, error) {
		table := parseKeywords(old)
		changed := false
		out, full = out[:0], full[:0]
		for _, kw := range kws {
			idx := lookupKeyword(table, kw)
			if idx < 0 {
				for i := 0; i < maxKeywords; i++ {
					if _, used := table[i]; !used {
						idx = i
						table[i] = kw
						changed = true
						break
					}
				}
			}
			if idx < 0 {
				full = append(full, kw)
				continue
			}
			out = append(out, byte('a'+idx))
		}
		if !changed {
			return nil, false, nil
		}
		return formatKeywords(table), true, nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("maildir: keywords: %w", err)
	}
	return string(out), full, nil
}

func lookupKeyword(table map[int]string, kw string) int {
	for i, k := range table {
		if k == kw {
			return i
		}
	}
	// IMAP keywords compare case-insensitively (RFC 3501 section 2.3.2).
	for i, k := range table {
		if strings.EqualFold(k, kw) {
			return i
		}
	}
	return -1
}

// parseKeywords reads the table, skipping lines it does not understand
// (Dovecot does the same).
func parseKeywords(b []byte) map[int]string {
	t := map[int]string{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		num, kw, ok := strings.Cut(string(line), " ")
		if !ok || kw == "" {
			continue
		}
		i, err := strconv.Atoi(num)
		if err != nil || i < 0 || i >= maxKeywords {
			continue
		}
		t[i] = kw
	}
	return t
}

func formatKeywords(t map[int]string) []byte {
	idx := make([]int, 0, len(t))
	for i := range t {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var b bytes.Buffer
	for _, i := range idx {
		fmt.Fprintf(&b, "%d %s\n", i, t[i])
	}
	return b.Bytes()
}
