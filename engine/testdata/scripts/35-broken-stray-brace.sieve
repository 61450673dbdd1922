keep;
}
discard;
