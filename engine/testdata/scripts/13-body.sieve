require ["body", "fileinto"];
if body :text :contains "unsubscribe" { fileinto "Newsletters"; }
if body :raw :contains "=?utf-8?" { keep; }
if body :content "text/html" :matches "*<script*" { discard; }
if body :content ["image", "application/pdf"] :contains "%PDF" { fileinto "PDF"; }
