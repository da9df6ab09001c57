import sys

for i, arg in enumerate(sys.argv[1:]):
    print("arg %i: %s" % (i, arg))
