"""What reviewers read: state diagrams (:mod:`.diagram`) and the
self-contained HTML review report (:mod:`.report`)."""
