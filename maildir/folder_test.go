package maildir

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEncodeMUTF7(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"INBOX", "INBOX"},
		{"Lists", "Lists"},
		{"a&b", "a&-b"},
		{"&", "&-"},
		{"Ünïcode", "&ANw-n&AO8-code"}, // what Dovecot 2.3 wrote on disk here
		{"Ça", "&AMc-a"},
		{"日本語", "&ZeVnLIqe-"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}, // RFC 3501 section 5.1.3 example
		{"😀", "&2D3eAA-"}, // outside the BMP: a surrogate pair
		{"a\u00e9b\u00e8", "a&AOk-b&AOg-"},
		{"", ""},
	} {
		if got := EncodeMUTF7(tc.in); got != tc.want {
			t.Errorf("EncodeMUTF7(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.in == "" {
			continue
		}
		back, err := DecodeMUTF7(tc.want)
		if err != nil || back != tc.in {
			t.Errorf("DecodeMUTF7(%q) = %q, %v; want %q", tc.want, back, err, tc.in)
		}
	}
}

func TestDecodeMUTF7Errors(t *testing.T) {
	for _, in := range []string{"&", "&ANw", "é", "&AGE-" /* encoded "a" */, "&A-"} {
		if got, err := DecodeMUTF7(in); err == nil {
			t.Errorf("DecodeMUTF7(%q) = %q, want an error", in, got)
		}
	}
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "a&b", "Ünïcode", "日本語", "😀x", "&-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		enc := EncodeMUTF7(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("EncodeMUTF7(%q) = %q: not printable ASCII", s, enc)
			}
		}
		if strings.ContainsAny(enc, "/") && !strings.Contains(s, "/") {
			t.Fatalf("EncodeMUTF7(%q) = %q: introduced a slash", s, enc)
		}
		back, err := DecodeMUTF7(enc)
		if err != nil || back != strings.ToValidUTF8(s, "\uFFFD") {
			t.Fatalf("round trip %q -> %q -> %q, %v", s, enc, back, err)
		}
	})
}

func TestMapperMap(t *testing.T) {
	type want struct{ dir, name, sub string }
	for _, tc := range []struct {
		in   string
		seps string
		want *want // nil: ErrUnsafeName
	}{
		{"INBOX", "", &want{"", "INBOX", ""}},
		{"inbox", "", &want{"", "INBOX", ""}},
		{"Inbox", "", &want{"", "INBOX", ""}},
		{"Lists/Go", "", &want{".Lists.Go", "Lists/Go", "Lists\tGo"}},
		{"INBOX/Lists/Go", "", &want{".Lists.Go", "Lists/Go", "Lists\tGo"}},
		{"inbox.Lists.Go", "", &want{".Lists.Go", "Lists/Go", "Lists\tGo"}},
		{"Lists.Go", "", &want{".Lists.Go", "Lists/Go", "Lists\tGo"}},
		{"Junk", "", &want{".Junk", "Junk", "Junk"}},
		// Dovecot never lists ".INBOX" or ".inbox": a copy there would be
		// invisible (checked with doveadm); ".INBOX.Sub" is listed.
		{"INBOX/INBOX", "", nil},
		{"inbox.Inbox", "", nil},
		{"INBOX/INBOX/Sub", "", &want{".INBOX.Sub", "INBOX/Sub", "INBOX\tSub"}},
		{"INBOXes", "", &want{".INBOXes", "INBOXes", "INBOXes"}},
		{"Ünïcode/Ça", "", &want{".&ANw-n&AO8-code.&AMc-a", "Ünïcode/Ça", "&ANw-n&AO8-code\t&AMc-a"}},
		{"A&B", "", &want{".A&-B", "A&B", "A&-B"}},
		{"with space", "", &want{".with space", "with space", "with space"}},
		{"Lists/Go", "/", &want{".Lists.Go", "Lists/Go", "Lists\tGo"}},
		// With only "/" as separator a dot cannot be stored in Maildir++.
		{"Lists.Go", "/", nil},
		// With only "." as separator "/" is an ordinary character: refuse.
		{"a/b", ".", nil},
		{"", "", nil},
		{"..", "", nil},
		{"../../etc", "", nil},
		{"a/../b", "", nil},
		{"a//b", "", nil},
		{"/a", "", nil},
		{"a/", "", nil},
		{".hidden", "", nil},
		{"a/./b", "", nil},
		{"INBOX/", "", nil},
		{"tab\there", "", nil},
		{"nl\nhere", "", nil},
		{"del\x7f", "", nil},
		{"c1\u0085", "", nil},
		{"star*", "", nil},
		{"pct%", "", nil},
		{"bad\xffutf8", "", nil},
		{strings.Repeat("x", 300), "", nil},
	} {
		got, err := Mapper{Separators: tc.seps}.Map(tc.in)
		if tc.want == nil {
			if !errors.Is(err, ErrUnsafeName) {
				t.Errorf("Map(%q, seps %q) = %+v, %v; want ErrUnsafeName", tc.in, tc.seps, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Map(%q, seps %q): %v", tc.in, tc.seps, err)
			continue
		}
		if got.Dir != tc.want.dir || got.Name != tc.want.name || got.Subscription != tc.want.sub {
			t.Errorf("Map(%q, seps %q) = %+v, want %+v", tc.in, tc.seps, got, *tc.want)
		}
	}
}

func FuzzMapperMap(f *testing.F) {
	for _, s := range []string{"INBOX", "Lists/Go", "..", "a/../b", "Ünïcode", ".x", "a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Mapper{}.Map(s)
		if err != nil {
			return
		}
		// Whatever is accepted is one directory name directly under the
		// root: no path separator, not "." or "..", and a leading dot
		// (Maildir++) unless it is the root itself.
		if got.Dir == "" {
			return
		}
		if strings.Contains(got.Dir, "/") || got.Dir == "." || got.Dir == ".." || got.Dir[0] != '.' ||
			strings.Contains(got.Dir, "..") || strings.HasSuffix(got.Dir, ".") {
			t.Fatalf("Map(%q) = %q: unsafe directory", s, got.Dir)
		}
		for i := 0; i < len(got.Dir); i++ {
			if got.Dir[i] < 0x20 || got.Dir[i] > 0x7e {
				t.Fatalf("Map(%q) = %q: not printable ASCII", s, got.Dir)
			}
		}
	})
}

func TestSplitFlags(t *testing.T) {
	for _, tc := range []struct {
		in       []string
		info     string
		keywords []string
		ignored  []string
	}{
		{nil, "", nil, nil},
		{[]string{`\Seen`}, "S", nil, nil},
		{[]string{`\Seen \Flagged`}, "FS", nil, nil},
		{[]string{`\seen`, `\ANSWERED`, `\Deleted`, `\Draft`, `\Flagged`}, "DFRST", nil, nil},
		{[]string{`\Seen`, `\Seen`}, "S", nil, nil},
		{[]string{`$Label1`, `Junk`, `$label1`}, "", []string{"$Label1", "Junk"}, nil},
		{[]string{`\Recent`, `\Foo`}, "", nil, []string{`\Recent`, `\Foo`}},
		{[]string{`bad(kw`, `a"b`, `x]`, `ünï`}, "", nil, []string{`bad(kw`, `a"b`, `x]`, `ünï`}},
		{[]string{`\Seen $Work  \Answered`}, "RS", []string{"$Work"}, nil},
	} {
		got := SplitFlags(tc.in)
		if got.Info != tc.info || strings.Join(got.Keywords, ",") != strings.Join(tc.keywords, ",") ||
			strings.Join(got.Ignored, ",") != strings.Join(tc.ignored, ",") {
			t.Errorf("SplitFlags(%q) = %+v, want info %q keywords %q ignored %q", tc.in, got, tc.info, tc.keywords, tc.ignored)
		}
	}
}
