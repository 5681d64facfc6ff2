# cs_protoc(OUT_SRCS PROTO_ROOT OUT_DIR file.proto ...)
#
# Generate protobuf-c sources at build time (never committed).  Sets
# OUT_SRCS in the caller to the generated .c files.
function(cs_protoc out_srcs proto_root out_dir)
  set(srcs)
  foreach(rel ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" stem ${rel})
    set(out ${out_dir}/${stem}.pb-c)
    add_custom_command(
      OUTPUT ${out}.c ${out}.h
      COMMAND ${PROTOC_C} --proto_path=${proto_root} --proto_path=${PROJECT_SOURCE_DIR}/proto
              --c_out=${out_dir} ${proto_root}/${rel}
      DEPENDS ${proto_root}/${rel}
      COMMENT "protoc-c ${rel}")
    list(APPEND srcs ${out}.c)
  endforeach()
  set(${out_srcs} ${srcs} PARENT_SCOPE)
endfunction()
