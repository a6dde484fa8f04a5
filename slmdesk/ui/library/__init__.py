"""The Library page: the models on this computer."""
