# PGXS build of the phasemig module.  The pure C++ core is also built on its
# own by CMakeLists.txt for its unit tests and benchmarks.
EXTENSION = phasemig
MODULE_big = phasemig
DATA = $(wildcard sql/phasemig--*.sql)
PGFILEDESC = "phasemig - in-server migration between fixed and date-ranged project phases"

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

REGRESS = $(patsubst sql/%.sql,%,$(filter-out sql/phasemig--%,$(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

# Hidden visibility keeps the C++ internals out of the backend's symbol
# space; PGDLLEXPORT marks what PostgreSQL must find.
PHASEMIG_CXXFLAGS = -std=c++17 -fvisibility=hidden -fvisibility-inlines-hidden -Wno-register \
	-DPGDLLEXPORT='__attribute__((visibility("default")))'
PG_CPPFLAGS = -Isrc -I/usr/include
PG_CXXFLAGS = $(PHASEMIG_CXXFLAGS) -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = -lstdc++ -Wl,--version-script=$(srcdir)/exports.map

include $(PGXS)

# Debian's PGXS also compiles every .cpp to LLVM bitcode with clang for JIT
# inlining; it needs the same language flags.
COMPILE.cxx.bc = $(CLANG) -xc++ -Wno-ignored-attributes -Wno-register $(BITCODE_CXXFLAGS) $(CPPFLAGS) \
	$(PHASEMIG_CXXFLAGS) -flto=thin -emit-llvm -c

phasemig.so: exports.map

$(OBJS): $(wildcard src/core/*.hpp src/pg/*.hpp)

# The pg_regress suite with every backend under valgrind (slow; see test/valgrind/run.sh).
.PHONY: valgrind-check
valgrind-check:
	test/valgrind/run.sh
