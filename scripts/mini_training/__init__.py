"""One module per mini model: configure(parser), train(args), export(result, out, args), check(out)."""
