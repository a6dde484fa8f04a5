"""Make a model smaller: pruning plans, quantization pipeline, quality evaluation. Heavy native
work runs in a child process; everything that runs there lives in `slmdesk.optimize.child`."""
