require ["include"];
include :personal "common";
include :global :once "spam";
return;
