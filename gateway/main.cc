#include <cstdio>
int main() { std::puts("cpis-gateway skeleton"); return 0; }
