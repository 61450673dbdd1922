package vacation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sieved/sieved/engine"
)

func newEngine(p Periods) *engine.Engine {
	return engine.New(engine.Config{Extensions: []engine.Extension{NewExtension(p)}})
}

func TestExtensionAdvertised(t *testing.T) {
	got := strings.Join(newEngine(DefaultPeriods()).Extensions(), " ")
	for _, want := range []string{"vacation", "vacation-seconds"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("extensions %q lack %q", got, want)
		}
	}
}

func TestExtensionCompile(t *testing.T) {
	eng := newEngine(DefaultPeriods())
	for _, tc := range []struct {
		name, src string
		errLine   int    // 0: compiles
		errText   string // substring of the error
		warnLine  int
		warnText  string
	}{
		{name: "plain", src: `require "vacation"; vacation "away";`},
		{name: "all arguments", src: `require "vacation";
vacation :days 3 :subject "Away" :from "Alice <alice@example.org>" :addresses ["a@example.org", "b@example.org"] :mime :handle "h" "Content-Type: text/plain

away
";`},
		{name: "missing require", src: "\nvacation \"away\";", errLine: 2, errText: "require"},
		{name: "vacation-seconds implies vacation", src: `require "vacation-seconds"; vacation :seconds 86400 "away";`},
		{name: ":seconds without vacation-seconds", src: "require \"vacation\";\n\nvacation :seconds 86400 \"away\";", errLine: 3, errText: "vacation-seconds"},
		{name: ":days with :seconds", src: "require [\"vacation\", \"vacation-seconds\"];\nvacation :days 1 :seconds 5 \"away\";", errLine: 2, errText: ":days or :seconds"},
		{name: "bad :from", src: "require \"vacation\";\n\n\nvacation :from \"not an address\" \"away\";", errLine: 4, errText: ":from"},
		{name: "bad :addresses item", src: "require \"vacation\";\nvacation :addresses [\"ok@example.org\", \"bad\"] \"away\";", errLine: 2, errText: ":addresses"},
		{name: ":from with a variable is checked at run time", src: `require ["vacation", "variables"]; set "f" "x"; vacation :from "${f}" "away";`},
		{name: "missing reason", src: "require \"vacation\";\nvacation :days 2;", errLine: 2},
		{name: "unknown tag", src: "require \"vacation\";\nvacation :weeks 2 \"x\";", errLine: 2, errText: ":weeks"},
		{name: ":days 0 is a warning", src: "require \"vacation\";\nvacation :days 0 \"away\";", warnLine: 2, warnText: "minimum"},
		{name: ":seconds 3600 is a warning", src: "require \"vacation-seconds\";\n\nvacation :seconds 3600 \"away\";", warnLine: 3, warnText: "minimum"},
		{name: ":days 90 is a warning", src: "require \"vacation\";\nvacation :days 90 \"away\";", warnLine: 2, warnText: "maximum"},
		{name: "second vacation is a warning", src: "require \"vacation\";\nif true { vacation \"a\"; }\nelse { vacation :handle \"b\" \"b\"; }", warnLine: 3, warnText: "second vacation"},
		{name: "reject after vacation is a warning", src: "require [\"vacation\", \"reject\"];\nif true { vacation \"a\"; }\nelse {\n  reject \"no\"; }", warnLine: 4, warnText: "reject command with the vacation command at line 2"},
		{name: "vacation after ereject is a warning", src: "require [\"vacation\", \"ereject\"];\nif true { ereject \"no\"; }\n\nvacation \"a\";", warnLine: 4, warnText: "with the ereject command at line 2"},
		// Both on every message: the script can never work, so refuse it.
		{name: "two unconditional vacations", src: "require \"vacation\";\nvacation \"a\";\nvacation :handle \"b\" \"b\";", errLine: 3, errText: "second vacation command (the first is at line 2): both run on every message"},
		{name: "unconditional vacation and reject", src: "require [\"vacation\", \"reject\"];\nvacation \"a\";\n\nreject \"no\";", errLine: 4, errText: "reject command with the vacation command at line 2"},
		{name: "a stop between makes the second conditional", src: "require [\"vacation\", \"reject\"];\nvacation \"a\";\nstop;\nreject \"no\";", warnLine: 4, warnText: "executing both in one run is an error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, diags := eng.Compile("test", []byte(tc.src))
			if tc.errLine > 0 || tc.errText != "" {
				errs := diags.Errors()
				if len(errs) == 0 {
					t.Fatalf("compiled, want an error")
				}
				if tc.errLine > 0 && errs[0].Line != tc.errLine {
					t.Errorf("error at line %d, want %d: %s", errs[0].Line, tc.errLine, errs[0].Message)
				}
				if !strings.Contains(errs[0].Message, tc.errText) {
					t.Errorf("error %q does not mention %q", errs[0].Message, tc.errText)
				}
				return
			}
			if diags.HasErrors() || s == nil {
				t.Fatalf("errors: %s", diags.Format("test", 0))
			}
			w := diags.Warnings()
			if tc.warnLine == 0 {
				if len(w) > 0 {
					t.Errorf("unexpected warnings: %s", w.Format("test", 0))
				}
				return
			}
			if len(w) != 1 || w[0].Line != tc.warnLine || !strings.Contains(w[0].Message, tc.warnText) {
				t.Errorf("warnings %+v, want one at line %d about %q", w, tc.warnLine, tc.warnText)
			}
		})
	}
}

func run(t *testing.T, eng *engine.Engine, src, msg string) (*engine.Result, error) {
	t.Helper()
	s, diags := eng.Compile("test", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("compile: %s", diags.Format("test", 0))
	}
	m, err := engine.ReadMessage(strings.NewReader(strings.ReplaceAll(msg, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return eng.Run(context.Background(), s, engine.Envelope{From: "bob@example.com", To: "alice@example.org"}, m)
}

func vacationActions(res *engine.Result) (vac []*Action, keep bool) {
	for _, a := range res.Actions {
		switch a := a.(type) {
		case engine.ExtensionAction:
			if v, ok := a.Value.(*Action); ok && a.Extension == ExtensionName {
				vac = append(vac, v)
			}
		case engine.Keep:
			keep = true
		}
	}
	return vac, keep
}

const testMsg = "From: Bob <bob@example.com>\nTo: alice@example.org\nSubject: Lunch\n\nhello\n"

func TestExtensionRun(t *testing.T) {
	eng := newEngine(Periods{Min: time.Minute, Default: 7 * day, Max: 60 * day})
	for _, tc := range []struct {
		name, src string
		want      Action
		wantErr   string
	}{
		{name: "defaults", src: `require "vacation"; vacation "away";`,
			want: Action{Period: 7 * day, Reason: "away", Handle: DefaultHandle("away", "", "", false)}},
		{name: ":days", src: `require "vacation"; vacation :days 3 "away";`,
			want: Action{Period: 3 * day, Reason: "away", Handle: DefaultHandle("away", "", "", false)}},
		{name: ":seconds", src: `require "vacation-seconds"; vacation :seconds 3600 "away";`,
			want: Action{Period: time.Hour, Reason: "away", Handle: DefaultHandle("away", "", "", false)}},
		{name: ":seconds raised to the minimum", src: `require "vacation-seconds"; vacation :seconds 5 "away";`,
			want: Action{Period: time.Minute, Reason: "away", Handle: DefaultHandle("away", "", "", false)}},
		{name: "huge :days clamped", src: `require "vacation"; vacation :days 99999999999 "away";`,
			want: Action{Period: 60 * day, Reason: "away", Handle: DefaultHandle("away", "", "", false)}},
		{name: "variables expanded, default handle from the unexpanded text",
			src: `require ["vacation", "variables"]; set "who" "Alice"; set "s" "Away"; set "f" "alice@example.org";
vacation :subject "${s}" :from "${f}" :addresses ["${f}"] "${who} is away";`,
			want: Action{Period: 7 * day, Subject: "Away", From: "alice@example.org", Addresses: []string{"alice@example.org"},
				Reason: "Alice is away", Handle: DefaultHandle("${who} is away", "${s}", "${f}", false)}},
		{name: "explicit :handle is expanded", src: `require ["vacation", "variables"]; set "x" "1"; vacation :handle "h${x}" "away";`,
			want: Action{Period: 7 * day, Reason: "away", Handle: "h1"}},
		{name: "invalid :addresses item ignored at run time", src: `require ["vacation", "variables"]; set "x" "bad"; vacation :addresses ["${x}", "ok@example.org"] "away";`,
			want: Action{Period: 7 * day, Reason: "away", Addresses: []string{"ok@example.org"}, Handle: DefaultHandle("away", "", "", false)}},
		{name: "invalid :from at run time", src: `require ["vacation", "variables"]; set "f" "nope"; vacation :from "${f}" "away";`,
			wantErr: ":from"},
		// Conditional at compile time (so only warned about), executed together.
		{name: "two vacations executed", src: "require \"vacation\";\nif true { vacation \"a\"; }\nvacation :handle \"x\" \"b\";", wantErr: "duplicate vacation"},
		{name: "vacation with reject", src: "require [\"vacation\", \"reject\"];\nif true { vacation \"a\"; }\nreject \"no\";", wantErr: "line 3: reject action conflicts with the vacation action"},
		{name: "vacation with ereject", src: "require [\"vacation\", \"ereject\"];\nif true { ereject \"no\"; }\nvacation \"a\";", wantErr: "line 3: vacation: vacation conflicts with the earlier ereject action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, eng, tc.src, testMsg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			vac, keep := vacationActions(res)
			if len(vac) != 1 {
				t.Fatalf("%d vacation actions in %v", len(vac), res.Actions)
			}
			if !keep {
				t.Errorf("vacation cancelled the implicit keep: %v", res.Actions)
			}
			got, want := *vac[0], tc.want
			if got.Period != want.Period || got.Subject != want.Subject || got.From != want.From ||
				got.Reason != want.Reason || got.Handle != want.Handle || got.Mime != want.Mime ||
				strings.Join(got.Addresses, ",") != strings.Join(want.Addresses, ",") {
				t.Errorf("action\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestExtensionKeepsWithFileinto(t *testing.T) {
	res, err := run(t, newEngine(DefaultPeriods()), `require ["vacation", "fileinto"]; vacation "away"; fileinto "Away";`, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	vac, keep := vacationActions(res)
	if len(vac) != 1 || keep {
		t.Fatalf("actions %v: want vacation and fileinto only (fileinto cancels the implicit keep)", res.Actions)
	}
}
