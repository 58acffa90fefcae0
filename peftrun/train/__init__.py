"""The run side: load data and model, train with TRL, and leave a complete run directory;
then evaluate, merge or generate with what a run left behind."""
