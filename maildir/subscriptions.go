package maildir

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
)

// SubscriptionsFile is Dovecot's subscription list in the Maildir root.
// Version 2 (what Dovecot 2.3 writes): a "V\t2" line, an empty line, then
// one mailbox per line with its hierarchy separated by TAB and each
// component in modified UTF-7.
const SubscriptionsFile = "subscriptions"

var subsHeader = []byte("V\t2\n\n")

// subscribe adds f to the subscriptions file in root, keeping what is there.
func subscribe(ctx context.Context, root string, perm filePerm, f Folder) error {
	if f.IsInbox() {
		return nil
	}
	err := updateLocked(ctx, filepath.Join(root, SubscriptionsFile), perm, func(old []byte) ([]byte, bool, error) {
		if len(old) > 0 && !bytes.HasPrefix(old, []byte("V\t2\n")) {
			// A version 1 file (Dovecot before 2.1) names mailboxes with
			// the namespace separator, which we cannot know: leave it.
			return nil, false, nil
		}
		for _, line := range bytes.Split(old, []byte("\n")) {
			if string(line) == f.Subscription {
				return nil, false, nil
			}
		}
		var b bytes.Buffer
		if len(old) == 0 {
			b.Write(subsHeader)
		} else {
			b.Write(old)
			if old[len(old)-1] != '\n' {
				b.WriteByte('\n')
			}
		}
		b.WriteString(f.Subscription)
		b.WriteByte('\n')
		return b.Bytes(), true, nil
	})
	if err != nil {
		return fmt.Errorf("maildir: subscribe %q: %w", f.Name, err)
	}
	return nil
}
