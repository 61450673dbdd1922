require "ereject";
if size :over 10M {
    ereject "Message too large";
}
