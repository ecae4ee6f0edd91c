"""Thin command-line front ends: parse arguments, call one library function, say where results went."""
