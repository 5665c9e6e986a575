// placeholder; see compiler/ headers
namespace tessera {}
