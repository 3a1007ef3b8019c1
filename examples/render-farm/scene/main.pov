// A small animated scene: three spheres circling a glossy one over a
// checkered floor. Frame F of N (given with Declare=F=... Declare=N=...).
#version 3.7;
#include "colors.inc"
#include "objects.inc"

#ifndef (F) #declare F = 0; #end
#ifndef (N) #declare N = 12; #end
#declare T = F / N;

global_settings { assumed_gamma 1.0 }
camera { location <0, 3, -7> look_at <0, 0.8, 0> angle 45 }
light_source { <-6, 10, -8> color White }
light_source { <5, 6, -3> color rgb 0.4 }
sky_sphere { pigment { gradient y color_map { [0 color rgb <0.7, 0.8, 1>] [1 color rgb <0.2, 0.3, 0.7>] } } }

plane { y, 0 pigment { checker color rgb 0.9 color rgb 0.25 scale 1 } finish { reflection 0.1 } }
object { Center }
#for (I, 0, 2)
  object { Orbiter(I) translate <2.2, 0.5 + 0.3 * sin(2 * pi * (T + I / 3)), 0> rotate y * (360 * T + 120 * I) }
#end
