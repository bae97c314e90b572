"""Infrastructure shared by the commands: how work is split across processes (:mod:`.shards`)."""
