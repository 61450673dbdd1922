package config

// LDA is the [lda] section.
type LDA struct{}

func defaultLDA() LDA { return LDA{} }

func (x LDA) validate() error { return nil }
