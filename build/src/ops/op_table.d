build/src/ops/op_table.o: src/ops/op_table.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
