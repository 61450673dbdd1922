package managesieve

import (
	"context"
	"errors"
	"fmt"

	"github.com/sieved/sieved/storage"
)

// FileStore is the Store backed by the on-disk script store that
// sieve-lda reads.
type FileStore struct {
	Store *storage.Store
}

// User implements Store.
func (f FileStore) User(ctx context.Context, id Identity) (Scripts, error) {
	u, err := f.Store.User(id.Domain, id.User)
	if err != nil {
		return nil, err
	}
	return fileScripts{u}, nil
}

type fileScripts struct{ u *storage.UserStore }

// storageErr adds the managesieve sentinel matching a storage error, so
// that session.storeError picks the response code.
func storageErr(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range []struct{ from, to error }{
		{storage.ErrNotFound, ErrNonexistent},
		{storage.ErrActive, ErrActive},
		{storage.ErrAlreadyExists, ErrAlreadyExists},
		{storage.ErrInvalidName, ErrInvalidName},
		{storage.ErrQuotaMaxSize, ErrQuotaMaxSize},
		{storage.ErrQuotaMaxScripts, ErrQuotaMaxScripts},
		{storage.ErrQuota, ErrQuota},
	} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w: %w", m.to, err)
		}
	}
	return err
}

func (f fileScripts) ValidateName(name string) error { return storageErr(storage.ValidateName(name)) }

func (f fileScripts) List(ctx context.Context) ([]ScriptInfo, error) {
	list, err := f.u.List(ctx)
	if err != nil {
		return nil, storageErr(err)
	}
	out := make([]ScriptInfo, len(list))
	for i, sc := range list {
		out[i] = ScriptInfo{Name: sc.Name, Active: sc.Active}
	}
	return out, nil
}

func (f fileScripts) Get(ctx context.Context, name string) ([]byte, error) {
	b, err := f.u.Get(ctx, name)
	return b, storageErr(err)
}

func (f fileScripts) CheckSpace(ctx context.Context, name string, size int64) error {
	return storageErr(f.u.CheckSpace(ctx, name, size))
}

func (f fileScripts) Put(ctx context.Context, name string, script []byte) error {
	return storageErr(f.u.Put(ctx, name, script))
}

func (f fileScripts) Delete(ctx context.Context, name string) error {
	return storageErr(f.u.Delete(ctx, name))
}

func (f fileScripts) Rename(ctx context.Context, oldName, newName string) error {
	return storageErr(f.u.Rename(ctx, oldName, newName))
}

func (f fileScripts) SetActive(ctx context.Context, name string) error {
	return storageErr(f.u.SetActive(ctx, name))
}
