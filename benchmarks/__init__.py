"""Benchmarks (`printfleet bench NAME`, from a source checkout; not installed). Each
prints figures and ratios to a baseline run in the same process, under its own topic
prefix and databases (`isolation`). Runtime packages never import this one."""
