# Command-line contract of bft-sim: --help exits 0 and names every option with its default;
# bad input gives one error line on stderr and exit status 2.
# Usage: cmake -DSIM=path/to/bft-sim -P sim_cli.cmake
execute_process(COMMAND ${SIM} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "--help exited ${rc}")
endif()
foreach(opt --protocol --replicas --seeds --requests --drop --duplicate --reorder --partition --crash
            --crash-primary --restart --real-crypto --verbose --fault-window --liveness-bound)
  string(FIND "${help}" "${opt}" at)
  if(at LESS 0)
    message(FATAL_ERROR "--help does not mention ${opt}")
  endif()
endforeach()

set(bad "--protocol=nope" "--seeds=9-3" "--seeds=x" "--replicas=3" "--drop=1.5" "--duplicate=-1"
        "--crash=2" "--bogus" "--requests=0" "--replicas=67")
foreach(arg ${bad})
  execute_process(COMMAND ${SIM} ${arg} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 2)
    message(FATAL_ERROR "'${arg}' exited ${rc}, expected 2")
  endif()
  string(REGEX MATCHALL "\n" lines "${err}")
  list(LENGTH lines nl)
  if(NOT nl EQUAL 1 OR NOT err MATCHES "^bft-sim: ")
    message(FATAL_ERROR "'${arg}' should print one 'bft-sim: ...' line, printed:\n${err}")
  endif()
endforeach()
