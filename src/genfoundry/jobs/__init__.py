"""Jobs: long work run outside the request, with progress, events and cancellation."""
