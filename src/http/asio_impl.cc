// The one translation unit that compiles Asio's and Beast's out-of-line code. Every other file
// of this module includes only their declarations (BOOST_*_SEPARATE_COMPILATION), which keeps
// the module's compile time down on small machines.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
