$wnd.jsme.runAsyncCallback3('x(723,614,ln);_.Zd=function(){this.a.n&&$1(this.a.n);this.a.n=new e2(0,this.a)};R(uZ)(3);\n//@ sourceURL=3.js\n')
