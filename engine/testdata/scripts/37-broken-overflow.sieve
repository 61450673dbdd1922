if size :over 99999999999G { discard; }
