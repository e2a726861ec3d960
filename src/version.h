#ifndef AG_VERSION_H
#define AG_VERSION_H
#define AUTHGATE_VERSION "0.1.0"
#endif
