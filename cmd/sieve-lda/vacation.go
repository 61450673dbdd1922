package main

import (
	"context"
	"path/filepath"

	"github.com/sieved/sieved/cmd/internal/wiring"
	"github.com/sieved/sieved/config"
	"github.com/sieved/sieved/engine"
	"github.com/sieved/sieved/lda"
	"github.com/sieved/sieved/storage"
	"github.com/sieved/sieved/vacation"
)

// The LDA hands vacation actions to vacationHandler (the engine learns the
// extension itself in wiring).
func init() {
	actionHandlers[vacation.ExtensionName] = vacationHandler
}

// vacationHandler sends vacation replies after the message is stored
// (lda.LDA.Extensions["vacation"]) through the delivery's sender. Its
// outcome never changes the delivery's.
func vacationHandler(cfg config.Config) lda.ExtensionHandler {
	opts := wiring.VacationOptions(cfg)
	return lda.ExtensionHandlerFunc(func(ctx context.Context, d *lda.Delivery, a engine.ExtensionAction) error {
		if d.Message == nil {
			return nil
		}
		h := &vacation.Handler{Options: opts, Sender: d.Sender, Logger: d.Log}
		// The script's envelope "to" is the original recipient when -a is
		// given; vacation's recipient is the final one (-d), as in
		// Pigeonhole, and the original one counts only when configured.
		env := d.Envelope
		env.To = d.Recipient.Address
		return h.HandleAction(ctx, vacation.Delivery{
			Dir:      vacationDir(cfg, d),
			User:     d.Recipient.Base(),
			Envelope: env,
			Header:   d.Message.Header(),
		}, a)
	})
}

// vacationDir is <storage root>/<domain>/<user>/vacation (what sievectl
// vacation reads), or vacation/ next to the script when the user cannot be
// mapped onto the store.
func vacationDir(cfg config.Config, d *lda.Delivery) string {
	if s, err := storage.New(storage.Config{Root: cfg.Storage.Root}); err == nil {
		if u, err := s.User(d.Recipient.Domain, d.Recipient.User); err == nil {
			return u.VacationDir()
		}
	}
	return filepath.Join(filepath.Dir(d.ScriptPath), "vacation")
}
