// placeholder
namespace tessera {}
