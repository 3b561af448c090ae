# Determinism check for bft-sim, run by ctest in its own processes (so address-space layout
# differs between runs): the same seed twice must give the same trace digest, different
# seeds different ones, and a multi-seed run the same combined digest twice.
# Usage: cmake -DSIM=path/to/bft-sim -DARGS="..." -P sim_determinism.cmake
separate_arguments(args UNIX_COMMAND "${ARGS}")

function(trace_of out seeds)
  execute_process(COMMAND ${SIM} ${args} --seeds ${seeds} OUTPUT_VARIABLE o RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 AND NOT rc EQUAL 1)
    message(FATAL_ERROR "bft-sim --seeds ${seeds} exited ${rc}:\n${o}")
  endif()
  string(REGEX MATCH "trace=([0-9a-f]+)" m "${o}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "no trace digest in output of --seeds ${seeds}:\n${o}")
  endif()
  set(${out} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()

trace_of(a 7)
trace_of(b 7)
trace_of(c 8)
trace_of(r1 1-10)
trace_of(r2 1-10)
message(STATUS "seed 7: ${a} / ${b}; seed 8: ${c}; seeds 1-10: ${r1} / ${r2}")
if(NOT a STREQUAL b)
  message(FATAL_ERROR "seed 7 gave two different traces: ${a} vs ${b}")
endif()
if(a STREQUAL c)
  message(FATAL_ERROR "seeds 7 and 8 gave the same trace ${a}")
endif()
if(NOT r1 STREQUAL r2)
  message(FATAL_ERROR "seeds 1-10 gave two different combined traces: ${r1} vs ${r2}")
endif()
