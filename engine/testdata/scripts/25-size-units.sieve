if size :over 1K { keep; }
if size :under 2M { keep; }
if size :over 1G { discard; }
if size :under 0 { discard; }
