build/src/ops/upsample_bilinear.o: src/ops/upsample_bilinear.c \
 src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
