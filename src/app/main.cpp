#include "app/app.h"

int main(int argc, char** argv) { return freshframe::app::Main(argc, argv); }
