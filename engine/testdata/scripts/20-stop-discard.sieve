if size :over 1 { discard; stop; }
keep;
