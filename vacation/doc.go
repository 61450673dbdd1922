// Package vacation implements Sieve vacation auto-replies: the "vacation"
// (RFC 5230) and "vacation-seconds" (RFC 6131) extensions, the rules of
// RFC 3834 for when an automatic response must not be sent, the reply
// itself, and the per-user memory of whom was answered.
//
// The behaviour follows Dovecot Pigeonhole, which users compare us with;
// where it deliberately differs (a +detail address in To counts as the
// user's address, a configurable no-reply sender rule, a Received loop
// guard) the difference is documented at the rule.
//
// The package has three parts:
//   - the extension (Extension), registered with the engine, which validates
//     scripts at compile time and produces an engine.ExtensionAction whose
//     Value is an *Action at run time;
//   - the decision and the reply (Policy.Check, Compose), pure functions;
//   - the Store of answered senders in the user's vacation/ directory and the
//     Handler the delivery agent calls to decide, send and remember.
package vacation
